"""Transcription for media-analysis: words with times and confidence, from an engine behind one
interface (`engine.py`), fanned out over spans of the recording with overlaps that the reduce
reconciles (`reconcile.py`), written as JSON, WebVTT and SubRip (`captions.py`)."""
