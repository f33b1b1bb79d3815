"""Evidence that outlives Hyoka: trusted timestamps (RFC 3161) for registrations and
evaluation PDFs."""
