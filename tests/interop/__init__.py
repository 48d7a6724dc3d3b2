"""Interoperability: EPCIS 2.0 documents checked against GS1's official JSON schema."""
