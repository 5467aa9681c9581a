"""The sent log on disk: the record layout and its fast reader, durable file writes, every lock."""
