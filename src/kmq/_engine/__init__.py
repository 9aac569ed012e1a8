"""The engine, stage by stage: the colour histogram (``histogram``), k-means
on it (``kmeans``), and the mapping of every pixel to its nearest palette
entry (``remap``). The Python modules validate, allocate and orchestrate;
the compiled kernels beside them (``_*.pyx``) hold the loops, and
``_parallel`` runs them on all cores."""
