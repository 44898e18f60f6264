"""The embedded digits model: data split, flow-matching UNet, classifiers, metrics, training."""
