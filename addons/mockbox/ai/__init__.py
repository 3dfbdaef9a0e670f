"""AI synthesis: LLM providers and the service that validates, repairs and accounts for their
answers. No mitmproxy import here; the Synthesize addon is the seam."""
