"""SP4N-LAPOR! connector: keeps an agency's complaint system and LAPOR! in step."""

__version__ = "0.1.0"
