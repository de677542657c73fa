"""The stages of the digit-predictor pipeline, one module per lesson step, each what dvc.yaml
runs as `python -m stages.<name>`. The code they share lives in pipeline/, digits/ and
courseware/; no module there imports a stage."""
