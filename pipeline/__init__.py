"""What every stage stands on: its command line and one-line errors (cli), the settings' rules
(config), outputs written whole or not at all (artifacts), and the names a variation may have
(names). It imports nothing else of the project."""
