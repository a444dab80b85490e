"""What the daemon keeps on disk: the database, files, keys and configuration."""
