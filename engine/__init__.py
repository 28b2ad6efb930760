"""EmerFlow engine: data, text encoding, backbone, aligner, meta-training, refinement, index.

The engine is pure ML: it never imports ``streamlit`` and knows nothing of the database.
"""

__version__ = "0.1.0"
