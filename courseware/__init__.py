"""The course: the author's lesson (lesson) and quiz (quiz) read and filled with the build's
values, what only the instructor may see (audience), and the last check on every student file
(leaks). It stands on the pipeline package."""
