"""Paper 2 ("Deep embeddings for robust user-based amateur vocal percussion classification"):
embeddings supervised at four label levels, per-user classifiers on them, baselines, saliency.
"""
