"""FX rates: the CSV file of ``smsrecon fx import`` and the ``fx.rate`` events it appends.

The conversion rule itself is pure and lives in pipeline.domain.fx.
"""
