"""Statement files a customer downloads from a bank (OFX/QFX, QIF, CSV, CAMT.053,
MT940), read into one model (`openagg.statements.model`) for the import service."""
