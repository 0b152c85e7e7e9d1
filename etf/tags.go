package etf

// VersionTag is the first byte of a versioned encoding, the output of
// term_to_binary/1 (Encode, DecodePrefix).
const VersionTag = 131

// Tags of the external term format, as in erts/emulator/beam/external.h:
// the first byte of each encoded term, after the version byte. They are
// exported for code that reads an envelope without decoding all of it
// (with TupleHeader, ListHeader and Skip); terms themselves are best read
// and written with Decode and AppendTerm.
const (
	TagNewFloat       = 70  // NEW_FLOAT_EXT: an IEEE 754 double
	TagBitBinary      = 77  // BIT_BINARY_EXT: a bitstring
	TagCompressed     = 80  // a zlib-compressed term, only after VersionTag
	TagAtomCacheRef   = 82  // ATOM_CACHE_REF: distribution only, refused
	TagNewPid         = 88  // NEW_PID_EXT
	TagNewPort        = 89  // NEW_PORT_EXT
	TagNewerReference = 90  // NEWER_REFERENCE_EXT
	TagSmallInteger   = 97  // SMALL_INTEGER_EXT: 0 to 255
	TagInteger        = 98  // INTEGER_EXT: a signed 32-bit integer
	TagFloat          = 99  // FLOAT_EXT: a float as text (old)
	TagAtom           = 100 // ATOM_EXT: a Latin-1 atom (old)
	TagReference      = 101 // REFERENCE_EXT (old)
	TagPort           = 102 // PORT_EXT (old)
	TagPid            = 103 // PID_EXT (old)
	TagSmallTuple     = 104 // SMALL_TUPLE_EXT: arity in 1 byte
	TagLargeTuple     = 105 // LARGE_TUPLE_EXT: arity in 4 bytes
	TagNil            = 106 // NIL_EXT: the empty list
	TagString         = 107 // STRING_EXT: a list of bytes
	TagList           = 108 // LIST_EXT: length, elements, tail
	TagBinary         = 109 // BINARY_EXT
	TagSmallBig       = 110 // SMALL_BIG_EXT: digits counted in 1 byte
	TagLargeBig       = 111 // LARGE_BIG_EXT: digits counted in 4 bytes
	TagNewFun         = 112 // NEW_FUN_EXT: a local fun
	TagExport         = 113 // EXPORT_EXT: fun M:F/A
	TagNewReference   = 114 // NEW_REFERENCE_EXT
	TagSmallAtom      = 115 // SMALL_ATOM_EXT: a Latin-1 atom (old)
	TagMap            = 116 // MAP_EXT
	TagAtomUTF8       = 118 // ATOM_UTF8_EXT: length in 2 bytes
	TagSmallAtomUTF8  = 119 // SMALL_ATOM_UTF8_EXT: length in 1 byte
	TagV4Port         = 120 // V4_PORT_EXT: a 64-bit port id
	TagLocal          = 121 // LOCAL_EXT: node-local, refused
)
