"""The media-analysis pipeline: find the highlights of a recording."""
