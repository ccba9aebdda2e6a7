"""The binlog change feed: which sample ids changed since a stored binlog position, read from the
server's row-based binlog instead of scanning the source tables.

``mode`` reads ``LAB_CHANGE_FEED``; ``access`` tells whether the account may read the binlog and,
if not, the grant or setting that fixes it; ``position`` stores the binlog position in the output
database and reads the server's current one; ``reader`` reads the changes between the two;
``sql`` holds their SQL text.
"""
