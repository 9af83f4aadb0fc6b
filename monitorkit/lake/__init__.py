"""The fleet on DuckLake: hosts ship closed batches to one lake, a hub maintains it and alerts over it.

``config`` reads ``[lake]`` and ``[hub]``; ``catalog`` attaches the lake; ``schema`` holds its tables
and views; ``ship`` is the owner's shipper service; ``hub`` and ``maintenance`` run the hub;
``connect.connect_lake`` is the reader. See docs/fleet.md.
"""
