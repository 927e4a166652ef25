"""Data for the documented tasks: the IMDB reviews (download, cache, load), text processing, and
length-bucketed padded batches. The other tasks generate their data in their own modules."""
