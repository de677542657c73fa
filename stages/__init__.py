"""The stages of the digit-predictor pipeline, one module per lesson step (see dvc.yaml)."""
