//go:build pyx_testhook

package pyetf

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
)

// --none-as nil: None becomes the atom nil (Elixir apps), and back to
// none when unset; an Atom('nil') key beside a None key is refused.
func TestNoneAsNil(t *testing.T) {
	SetNoneAsNil(true)
	defer SetNoneAsNil(false)
	out, err := convertFromPython("None")
	if assert.NoError(t, err) {
		assert.Equal(t, "8377036e696c", hex.EncodeToString(out))
	}
	_, err = convertFromPython("{None: 1, Atom('nil'): 2}")
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "dict has distinct keys")
	}
	_, err = convertFromPython("{None: 1, Atom('none'): 2}")
	assert.NoError(t, err)
	SetNoneAsNil(false)
	out, err = convertFromPython("None")
	if assert.NoError(t, err) {
		assert.Equal(t, "8377046e6f6e65", hex.EncodeToString(out))
	}
}
