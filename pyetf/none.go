package pyetf

/*
void pyx_set_none_as_nil(int nil);
*/
import "C"

// SetNoneAsNil makes Python's None convert to the atom nil instead of none
// (--none-as nil, for Elixir apps). Call it before any interpreter runs.
func SetNoneAsNil(nil_ bool) {
	v := 0
	if nil_ {
		v = 1
	}
	C.pyx_set_none_as_nil(C.int(v))
}
