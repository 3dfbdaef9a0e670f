"""config/ is installed as the package `mockbox.defaults`, so every copy of MockBox reads the
same documented defaults from config/mockbox.yaml."""
