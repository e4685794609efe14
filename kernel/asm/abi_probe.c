/* What the C compiler says about the SH ABI, for the on-target layout test:
 * the Rust side declares the same struct with repr(C) and compares. */
#include <stddef.h>

struct abi_probe {
	char a;
	long long b;
	double c;
	short d;
	int e;
};

const unsigned int sh4mm_abi_probe[] = {
	sizeof(struct abi_probe),
	__alignof__(struct abi_probe),
	offsetof(struct abi_probe, b),
	offsetof(struct abi_probe, c),
	offsetof(struct abi_probe, d),
	offsetof(struct abi_probe, e),
	__alignof__(long long),
	__alignof__(double),
	sizeof(long),
	sizeof(void *),
};
