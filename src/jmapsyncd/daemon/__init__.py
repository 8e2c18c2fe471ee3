"""The long-running side of jmapsyncd: one worker, a file watcher, a scheduler, systemd glue."""
