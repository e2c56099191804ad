"""The Photon-HDF5 specification's description of every node labctl writes outside ``/user``.

phconvert's validator (``phconvert.hdf5.assert_valid_photon_hdf5``) wants each node's
``TITLE`` attribute to be the specification's description of that field, word for
word, as PyTables stores it.  The texts below are the specification's (Photon-HDF5
v0.5, as shipped in phconvert 0.10's ``specs/photon-hdf5_specs.json``), with the
numbered fields (``split_ch1``...) already filled in.  ``tests/test_storage.py``
validates a labctl file with phconvert when it is installed.
"""

from __future__ import annotations

SPEC_TITLES: dict[str, str] = {
    '/': 'A file format for photon-counting detector based single-molecule spectroscopy experiments.',
    '/acquisition_duration': 'Measurement duration in seconds.',
    '/description': 'A user-defined comment describing the data file.',
    '/identity': 'Information about the Photon-HDF5 data file.',
    '/photon_data': 'Group containing arrays of photon-data.',
    '/provenance': 'Information about the original data file.',
    '/setup': 'Information about the experimental setup.',
    '/identity/author': 'Author of the current data file.',
    '/identity/creation_time': 'Creation time of the current Photon-HDF5 file.',
    '/identity/creator': 'Creator of the current Photon-HDF5 file.',
    '/identity/filename': 'Original file name of the current Photon-HDF5 file (i.e. file name at creation time).',
    '/identity/filename_full': 'Original file name (with full path) of the current Photon-HDF5 file (i.e. full file name at creation time).',
    '/identity/format_name': 'Name of the file format.',
    '/identity/format_url': 'Official URL for the Photon-HDF5 format.',
    '/identity/format_version': 'Version for the Photon-HDF5 format.',
    '/identity/software': 'Name of the software used to create the current Photon-HDF5 file.',
    '/identity/software_version': 'Version of the software used to create current the Photon-HDF5 file.',
    '/photon_data/detectors': 'Array of pixel IDs for each timestamp.',
    '/photon_data/measurement_specs': 'Metadata necessary for interpretation of the particular type of measurement.',
    '/photon_data/nanotimes': 'TCSPC photon arrival time (nanotimes). Units and other specifications are in nanotimes_specs group.',
    '/photon_data/nanotimes_specs': 'Group for nanotime-specific data.',
    '/photon_data/timestamps': 'Array of photon timestamps. Units specified in timestamps_units (defined in timestamps_specs/).',
    '/photon_data/timestamps_specs': 'Specifications for timestamps.',
    '/provenance/creation_time': 'Creation time of the original data file.',
    '/provenance/software': 'Software used to save the original data file.',
    '/provenance/software_version': 'Version of the software used to save the original data file.',
    '/setup/detection_split_ch_ratios': 'Power fraction detected by each "beam-split" channel (i.e. independent detection channels obtained through a non-polarizing beam splitter).',
    '/setup/detection_wavelengths': 'Reference wavelengths (units: meter) for each detected spectral band.',
    '/setup/detectors': "Metadata relative to each detector's pixel. Each field is an array with size equal to the number of the detectors.",
    '/setup/excitation_alternated': 'New in version 0.5. Indicates whether each excitation source is alternated (True, or 1) or not alternated (False, or 0).',
    '/setup/excitation_cw': 'For each excitation source, this field indicates whether excitation is continuous wave (CW), True (i.e. 1), or pulsed, False (i.e. 0).',
    '/setup/excitation_wavelengths': 'List of excitation wavelengths (center wavelength if broad-band) in increasing order (unit: meter).',
    '/setup/laser_repetition_rates': 'Repetition rates in Hz for each laser. CW lasers have a value of 0.',
    '/setup/lifetime': 'True (i.e. 1) if the measurement includes a nanotimes array of photon arrival times with respect to a laser pulse (as in TCSPC measurements).',
    '/setup/modulated_excitation': 'True (i.e. 1) if there is any form of excitation modulation of excitation wavelength (as in us-ALEX or PAX) or polarization. This field is also True for pulse-interleaved excitation (PIE) or ns-ALEX measurements.',
    '/setup/num_pixels': 'Total number of detector pixels.',
    '/setup/num_polarization_ch': 'Number of distinct polarization states which are acquired.',
    '/setup/num_spectral_ch': 'Number of distinct spectral bands which are acquired.',
    '/setup/num_split_ch': 'Number of distinct detection channels detecting the same spectral band and polarization. This value is > 1 when using a non-polarizing beam splitter.',
    '/setup/num_spots': 'Number of excitation (or detection) "spots" in the sample.',
    '/setup/detectors/counts': 'Total number of counts detected by each detector.',
    '/setup/detectors/id': 'Detector IDs as they appear on /photon_data/detectors.',
    '/setup/detectors/id_hardware': 'Original IDs assigned by the acquisition hardware to each detector.',
    '/setup/detectors/label': 'Labels (strings) describing each detector.',
    '/photon_data/measurement_specs/detectors_specs': 'Mapping between the pixel IDs and the detection channels.',
    '/photon_data/measurement_specs/laser_repetition_rate': 'Repetition rate of the pulsed excitation laser (in Hertz).',
    '/photon_data/measurement_specs/measurement_type': 'Name of the measurement the data represents.',
    '/photon_data/nanotimes_specs/tcspc_num_bins': 'Number of TCSPC bins.',
    '/photon_data/nanotimes_specs/tcspc_range': 'TCSPC full-scale range in seconds.',
    '/photon_data/nanotimes_specs/tcspc_unit': 'Value of 1-unit nanotime-increment in seconds (TCSPC bin size).',
    '/photon_data/timestamps_specs/timestamps_unit': 'Value of 1-unit timestamp-increment in seconds.',
    '/photon_data/measurement_specs/detectors_specs/split_ch1': 'Pixel IDs for the first channel split through a non-polarizing beam splitter.',
    '/photon_data/measurement_specs/detectors_specs/split_ch2': 'Pixel IDs for the second channel split through a non-polarizing beam splitter.',
}
