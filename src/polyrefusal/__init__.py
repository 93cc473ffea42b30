"""polyrefusal: audit and close the safety gap of LLMs across languages and demographic groups."""

__version__ = "0.1.0"

#: The 12 European languages of the multilingual refusal study (ISO 639-1).
ALL_LANGUAGES = ("en", "de", "it", "fr", "es", "pt", "pl", "cs", "sk", "sl", "lt", "lv")
