"""Unit tests for echotwist, run with C{trial echotwist}."""
