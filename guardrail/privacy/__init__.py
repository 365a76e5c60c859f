"""Privacy guardrails: personal data in records, re-identification risk, pseudonyms, audits."""

#: What ``PrivacyGuard`` writes into the run directory; the report and the score read it.
PRIVACY_FILE = "privacy.json"
