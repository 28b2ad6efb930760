"""EmerFlow: alignment network (Eq. 4), meta-training (Eq. 5-7) and phase refinement."""
