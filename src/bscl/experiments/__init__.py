"""The experiment lab: ``bscl compare`` (bscl's recipes head to head with sentence-transformers'),
``bscl reproduce`` (the paper's method grid), the result records and the tables generated from them
(``bscl results``), and the tasks' named recipes beyond the paper's (:mod:`bscl.experiments.recipes`).

It sits above the library (:mod:`bscl.run`, :mod:`bscl.training`, ...), which never imports it; every
folder and file it reads or writes is an argument (the repository's ``benchmarks/`` folders are only
the defaults of the command-line options).
"""
