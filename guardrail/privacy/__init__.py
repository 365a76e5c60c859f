"""Privacy guardrails: personal data in records, re-identification risk, pseudonyms, audits."""
