"""Response exports: CSV, XLSX, SPSS ``.sav`` and Stata ``.dta``.

- ``layout.py``: the variables of an export (defined once for every format): their names,
  labels, codes, missing codes, and the codebook.
- ``reading.py``: the responses read in keyset chunks as columns (choices decoded from
  ``Response.choice_bits`` with numpy, text and numbers from their answer rows).
- ``csv_file.py``, ``xlsx_file.py``, ``stat_files.py``: one writer per format.
- ``services.py``: an export as a recorded act (``ResponseExport`` and its history), made
  in the request or by a Celery task.
- ``expiry.py``: stored files deleted after ``HYOKA_EXPORT_FILE_DAYS`` or when personal
  data they may hold is erased (the record stays, "expired"); exports whose worker died
  failed.
"""
