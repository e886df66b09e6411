"""The credentials Rapport holds, and their removal from everything it relays, stores or logs."""
