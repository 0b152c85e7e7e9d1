package main

import "os"

// savedLibraryPathEnv names the LD_LIBRARY_PATH the BEAM had before it put
// the directory of libpython first (py_python, docs/deployment.md): "-"
// when it had none (the BEAM's open_port cannot set an empty variable).
const savedLibraryPathEnv = "ERLANG_PYTHON_SAVED_LD_LIBRARY_PATH"

// restoreLibraryPath gives Python, and what it starts, the BEAM's own
// LD_LIBRARY_PATH back: the dynamic loader has found libpython by now.
// Without the saved variable nothing changes.
func restoreLibraryPath() {
	saved, ok := os.LookupEnv(savedLibraryPathEnv)
	if !ok {
		return
	}
	if saved == "-" || saved == "" {
		os.Unsetenv("LD_LIBRARY_PATH")
	} else {
		os.Setenv("LD_LIBRARY_PATH", saved)
	}
	os.Unsetenv(savedLibraryPathEnv)
}
