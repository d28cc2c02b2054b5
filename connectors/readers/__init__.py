"""The file readers behind ``connectors.files``: bytes to text (``text``, ``gb18030``), CSV records
(``csvfile``), Arrow batches (``batches``) and workbooks (``workbook``)."""
