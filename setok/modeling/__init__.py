"""SeTok model code. Modules take plain keyword arguments; only ``build`` reads configuration."""
