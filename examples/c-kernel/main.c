/* A C kernel that uses sh4-mm through its C ABI (libsh4mm.a + sh4mm.h).
 * It links the board runtime's objects (runtime/asm/start.S: entry, vectors,
 * the assembly TLB-miss fast path, the exception frame; runtime/asm/user.S)
 * and provides what they call: kmain and sh4mm_exception. Output follows the project's test protocol. */
#include <stdint.h>
#include "sh4mm.h"

#define REG8(a)  (*(volatile uint8_t *)(a))
#define REG16(a) (*(volatile uint16_t *)(a))
#define REG32(a) (*(volatile uint32_t *)(a))

/* Waits for room in the 16-byte TX FIFO (SCFDR2 bits 12:8), not for
 * SCFSR2.TDFE: GXemul resets SCFSR2 to 0, so a TDFE poll before the first
 * byte never ends there; the count works on hardware, QEMU and GXemul. */
static void putc_(char c)
{
	while (((REG16(0xFFE8001C) >> 8) & 0x1F) >= 16)
		;
	REG8(0xFFE8000C) = (uint8_t)c;
	REG16(0xFFE80010) &= ~0x60;	/* acknowledge TDFE | TEND */
}

static void puts_(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			putc_('\r');
		putc_(*s);
	}
}

static void puthex(uint32_t v)
{
	puts_("0x");
	for (int i = 28; i >= 0; i -= 4)
		putc_("0123456789abcdef"[(v >> i) & 15]);
}

static void exit_(uint32_t code)
{
	puts_(code ? "@@EXIT 1@@\n" : "@@EXIT 0@@\n");
	REG16(0xA4000030) = 1;
	for (;;)
		;
}

/* Kernel stack for exceptions taken in user mode (runtime/asm/start.S). */
uint32_t sh4mm_kernel_stack;

/* ---- the OS's frame allocator: a bitmap over 0x0d000000..0x0e000000 ---- */
#define FIRST_PFN 0xD000u
#define NFRAMES 4096u
static uint32_t used[NFRAMES / 32];
static uint32_t live;

static int is_used(uint32_t i) { return used[i / 32] >> (i % 32) & 1; }

static uint32_t alloc_frames(uint32_t count)
{
	for (uint32_t i = 0; i + count <= NFRAMES; i++) {
		uint32_t j = 0;
		while (j < count && !is_used(i + j))
			j++;
		if (j == count) {
			for (j = 0; j < count; j++)
				used[(i + j) / 32] |= 1u << ((i + j) % 32);
			live += count;
			return FIRST_PFN + i;
		}
		i += j;
	}
	return 0;
}

static void free_frames(uint32_t pfn, uint32_t count)
{
	for (uint32_t j = 0; j < count; j++) {
		uint32_t i = pfn - FIRST_PFN + j;
		if (i < NFRAMES && is_used(i)) {
			used[i / 32] &= ~(1u << (i % 32));
			live--;
		}
	}
}

static uint8_t heap[128 * 1024] __attribute__((aligned(16)));

/* ---- exceptions: TLB codes go to the library's slow path ---- */
struct frame { uint32_t r[15], gbr, macl, mach, pr, spc, ssr, r15; };

void sh4mm_exception(uint32_t kind, struct frame *f, uint32_t code, uint32_t tea)
{
	if (kind != 2) {
		int r = sh4mm_tlb_exception(code, tea, !(f->ssr & 0x40000000));
		if (r == SH4MM_FAULT_RETRY)
			return;
	}
	puts_("OOPS: EXPEVT=");
	puthex(code);
	puts_(" TEA=");
	puthex(tea);
	puts_("\n");
	exit_(1);
}

/* ---- tests ---- */
static int passed, failed;
static int expect_panic;

static void check(const char *name, int ok);

static int contains(const char *s, size_t len, const char *w)
{
	for (size_t i = 0; i < len; i++) {
		size_t j = 0;
		while (w[j] && i + j < len && s[i + j] == w[j])
			j++;
		if (!w[j])
			return 1;
	}
	return 0;
}

/* The library's fatal-error hook: a bug inside it (a Rust panic) or its heap
 * running out ends here with the message. */
static void os_panic(const char *msg, size_t len)
{
	puts_("sh4mm panic hook: ");
	for (size_t i = 0; i < len; i++)
		putc_(msg[i]);
	puts_("\n");
	if (expect_panic) {
		check("library_panic_reaches_the_os", contains(msg, len, "the panic hook is wired"));
		puts_(failed ? "c-kernel: FAILED\n" : "c-kernel: all good\n");
		exit_(failed);
	}
	exit_(1);
}

static void check(const char *name, int ok)
{
	puts_("test ");
	puts_(name);
	puts_(ok ? " ... ok\n" : " ... FAILED\n");
	if (ok)
		passed++;
	else
		failed++;
}

void kmain(void)
{
	static const struct Sh4mmOs os = { alloc_frames, free_frames, os_panic };
	uint32_t va, pa, va2;
	uint64_t mm;

	REG16(0xFFE80008) = 0x0030;
	puts_("c-kernel: sh4-mm through its C ABI\nrunning 10 tests\n");
	check("init", sh4mm_init(&os, heap, sizeof heap) == 0 && sh4mm_enable_mmu() == 0);

	int ok = sh4mm_vmalloc(3 * 4096, &va) == 0;
	if (ok) {
		REG32(va + 4096 + 12) = 0xC0DE;           /* TLB miss -> fast path */
		ok = REG32(va + 4096 + 12) == 0xC0DE
		  && sh4mm_translate(0, va + 4096, &pa) == 0  /* handle 0: init_mm */
		  && REG32((pa | 0xA0000000) + 12) == 0xC0DE;
		ok = ok && sh4mm_vfree(va) == 0 && sh4mm_vfree(va) == SH4MM_ERROR_BAD_HANDLE;
	}
	check("vmalloc_vfree_through_the_tlb", ok);

	ok = sh4mm_dma_alloc_coherent(8192, &va, &pa) == 0 && REG32(va + 4100) == 0;
	if (ok) {
		REG32(va + 4100) = 0xD1A;
		ok = REG32((pa | 0xA0000000) + 4100) == 0xD1A && sh4mm_dma_free_coherent(va) == 0;
	}
	check("dma_alloc_coherent", ok);

	ok = sh4mm_ioremap(0x10000000, 0x2000, SH4MM_ATTR_UNCACHED, &va) == 0
	  && sh4mm_ioremap(0x10001000, 0x1000, SH4MM_ATTR_WRITE_BACK, &va2) == SH4MM_ERROR_ATTR_CONFLICT
	  && sh4mm_iounmap(va) == 0;
	check("ioremap_and_attribute_conflict", ok);

	uint32_t frame = alloc_frames(1) << 12;
	ok = frame && sh4mm_mm_create(&mm) == 0
	  && sh4mm_map_user(mm, 0x00400000, frame, 1, SH4MM_PROT_USER_RW, SH4MM_ATTR_WRITE_BACK) == 0
	  && sh4mm_switch_mm(mm) == 0;
	if (ok) {
		REG32(0x00400010) = 0x5EED;               /* miss, then initial page write */
		ok = REG32((frame | 0xA0000000) + 0x10) == 0x5EED;
	}
	check("user_address_space", ok);

	check("bad_input_is_an_error",
	      sh4mm_vmalloc(0, &va) == SH4MM_ERROR_ZERO_SIZE
	      && sh4mm_map_user(mm, 0xC0000000, frame, 1, SH4MM_PROT_USER_RW, 0) == SH4MM_ERROR_BAD_ADDRESS
	      && sh4mm_map_user(mm, 0x00400000, frame, 1, 7, 0) == SH4MM_ERROR_BAD_ARGUMENT
	      && sh4mm_mm_destroy(mm) == SH4MM_ERROR_BUSY
	      && sh4mm_switch_mm(12345) == SH4MM_ERROR_BAD_HANDLE);

	ok = sh4mm_unmap_user(mm, 0x00400000, 1) == 1 && sh4mm_switch_kernel() == 0
	  && sh4mm_mm_destroy(mm) == 0 && sh4mm_mm_destroy(mm) == SH4MM_ERROR_BAD_HANDLE;
	free_frames(frame >> 12, 1);
	check("teardown", ok);

	/* Kernel page tables stay; everything else went back to the OS. */
	check("frames_returned", live < 8);

	/* Exhaust the library's heap (ioremap takes no frames, only
	 * bookkeeping): it must end in an error code, not a crash. */
	int32_t err = 0;
	for (uint32_t i = 0; i < 100000 && err == 0; i++)
		err = sh4mm_ioremap(0x10000000 + i * 4096, 4096, SH4MM_ATTR_UNCACHED, &va);
	check("heap_exhaustion_is_an_error", err == SH4MM_ERROR_OUT_OF_MEMORY);

	/* Last: the library's panic path must reach os_panic above with its
	 * message, which ends the run. */
	expect_panic = 1;
	sh4mm_check_panic_hook();
	check("library_panic_reaches_the_os", 0);
	puts_("c-kernel: FAILED\n");
	exit_(1);
}
