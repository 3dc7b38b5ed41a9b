"""The YAML frontend: source text -> document -> parameters -> `Network`.

One way into the IR among others; nothing after it reads YAML, the document or its positions
except through the `Origins` lookup that `load` hands over with the network.
"""
