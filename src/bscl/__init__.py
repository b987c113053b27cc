"""bscl: batch-softmax contrastive fine-tuning of sentence embeddings for pairwise sentence scoring.

Layers follow the data flow; each imports only the ones before it:
``paths`` -> ``data`` -> ``batching`` -> ``models`` -> ``losses`` -> ``training`` -> ``evaluation``
-> ``reporting`` / ``cli``.
"""

__version__ = "0.1.0"
