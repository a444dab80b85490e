"""The clinical domain: patient fields, prescriptions, offline verification."""
