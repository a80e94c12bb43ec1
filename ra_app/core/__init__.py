"""The domain core: what the web app (ra_app's blueprints) and the pipeline (pipeline/) both
build on, importing neither (tests/test_layout.py checks it).

    models     the shared schema            states     processing states and their moves
    revisions  current text, new versions   tasks      review tasks: windows, claims, leases
    flow       what follows a state         outbox     work queued with the change it follows
    queues     which queue runs a stage     clock      the database's clock
    text       words, language tags         scoring    WER/CER and the word diff
    accounts   users and their rules        lexicon    the terms given to Gemini
    counts     shared dashboard counts      storage    files under DATA_ROOT (and S3)
    files      hashing, atomic writes       audio      a sample's audio files, clips
    wav        16-bit WAV reading/writing   peaks      the waveform peaks file

The session and the other Flask extensions are in ra_app/extensions.py.
"""
