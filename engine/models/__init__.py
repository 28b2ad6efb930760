"""Backbone recommenders and the categorical field encoding they share."""
