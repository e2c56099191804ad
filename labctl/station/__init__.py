"""The station: a station file (YAML) -> checked, configured instruments.

``station`` (``Station``, ``StationConfig``, the roles), ``yaml_loading`` (the file as safe
data), ``validation`` (schema checks whose errors name key, value and what is allowed),
``classes`` (dotted class paths resolved safely), ``settings`` (validate all, then set all),
``engine_settings`` (the ``engine:`` section), ``parameter_info`` (parameters as plain data
for panels), ``watchdog`` (instrument calls with a time limit), ``replay`` (a station whose
tagger serves a recorded file).  Imports nothing from acquisition, processes or the CLI.
"""
