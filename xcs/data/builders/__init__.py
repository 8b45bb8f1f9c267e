"""Builders of real data sets from public sources (`python -m xcs.data.build NAME --out DIR`)."""
