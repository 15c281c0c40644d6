"""Media in and out: the only place that runs ffmpeg or ffprobe."""
