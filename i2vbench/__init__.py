"""i2vbench: benchmark image-to-video models on the I2V-Bench dimensions."""

__version__ = "0.1.0"
