"""ElexirionDSP: conversational AI-engineering platform over YAML LLM pipelines."""
