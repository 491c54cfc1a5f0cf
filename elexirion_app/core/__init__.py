"""Types, errors, pricing and events shared by every layer. Imports no reflex and no SDK."""
