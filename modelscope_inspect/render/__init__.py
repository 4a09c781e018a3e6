"""Output layer: tables (rich), JSON documents and units. Commands hand results here; nothing else prints."""
