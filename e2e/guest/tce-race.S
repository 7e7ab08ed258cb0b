/*
 * L2 "firmware" for case stop-race (-bios, -smp 2): big-endian, entered at
 * 0x100 in 64-bit real mode on vCPU A, which starts vCPU B with RTAS
 * start-cpu (ids 1..63 tried in turn) at `secondary`.
 *
 * vCPU A, forever: RTAS ibm,reset-pe-dma-window on the default PHB (the
 * guest's windows go, the default one comes back: issue 19 items 2 and 4,
 * a move decided on a vCPU thread), then H_PUT_TCE of a value new each
 * time on entry 0 of it (so the restored window is not always empty at a
 * move), then 10 ms of nothing.
 *
 * vCPU B, forever, round after round, on entries 1..NENT of LIOBN
 * 0x80000000 (4 KiB pages): H_GET_TCE, H_PUT_TCE of a value unique to the
 * round and entry (odd rounds) or 0 (even rounds), H_GET_TCE again. B is
 * the only writer of these entries and a reset only clears them, so every
 * H_GET_TCE must return 0 or the last value B put there with success: any
 * other value is an update B made that the table lost (a put into a KVM
 * table after a move copied it). A put that fails (the window is being
 * reset) leaves the last value as it was.
 *
 * RAM layout:
 *   0x9000 A: resets   0x9008 A: failed RTAS calls   0x9010 B's cpu id (0: none started)
 *   0x9018 B: rounds   0x9020 B: failed puts   0x9028 B: lost updates (stale reads)
 *   0x9030 B: failed gets   0x9038 B: gets that found 0 after a put (a reset cleared it)
 *   0x9040 first lost update: entry, value read, value expected (0x9040..0x9050)
 *   0x9100 A's RTAS buffer   0x9200 start-cpu's RTAS buffer
 *   0x10000 + 8*e  last value B put with success on entry e
 */
#define NENT 16
#define H_GET_TCE 0x1c
#define H_PUT_TCE 0x20
#define H_RTAS 0xf000
#define RTAS_START_CPU 0x2006
#define RTAS_IBM_RESET_PE_DMA_WINDOW 0x2029

    .text
    .globl _start
_start:
    .org 0x100
    li      22, 0
    ori     22, 22, 0x9000          /* r22 = 0x9000: status */
    li      7, 0
    li      8, 0x200
0:  addi    8, 8, -8                /* clear the status page's first 0x200 bytes */
    stdx    7, 22, 8
    cmpdi   8, 0
    bgt     0b
    addi    23, 22, 0x200           /* r23 = 0x9200: start-cpu's arguments */
    li      27, 1                   /* r27 = cpu id to try */
1:  li      7, RTAS_START_CPU
    stw     7, 0(23)
    li      7, 3
    stw     7, 4(23)
    li      7, 1
    stw     7, 8(23)
    stw     27, 12(23)              /* id */
    lis     7, secondary@ha
    addi    7, 7, secondary@l
    stw     7, 16(23)               /* start address */
    li      7, 0
    stw     7, 20(23)               /* r3 */
    li      7, -1
    stw     7, 24(23)
    li      3, 0
    ori     3, 3, H_RTAS
    mr      4, 23
    sc      1
    lwz     7, 24(23)
    cmpwi   7, 0
    beq     2f
    addi    27, 27, 1
    cmpdi   27, 64
    blt     1b
    li      27, 0
2:  std     27, 16(22)

    li      20, 0
    oris    20, 20, 0x8000          /* r20 = LIOBN 0x80000000 */
    addi    23, 22, 0x100           /* r23 = 0x9100: RTAS arguments */
    li      25, 0                   /* r25 = resets */
    li      24, 0                   /* r24 = failed RTAS calls */
loop:
    addi    25, 25, 1
    /* token, nargs 3, nret 1, config address 0, BUID 0x800000020000000 */
    li      7, RTAS_IBM_RESET_PE_DMA_WINDOW
    stw     7, 0(23)
    li      7, 3
    stw     7, 4(23)
    li      7, 1
    stw     7, 8(23)
    li      7, 0
    stw     7, 12(23)
    lis     7, 0x0800
    stw     7, 16(23)
    lis     7, 0x2000
    stw     7, 20(23)
    li      7, -1
    stw     7, 24(23)
    li      3, 0
    ori     3, 3, H_RTAS
    mr      4, 23
    sc      1
    lwz     7, 24(23)
    cmpwi   7, 0
    beq     3f
    addi    24, 24, 1
3:  andi.   6, 25, 0x3fff
    addi    6, 6, 0x4100
    sldi    6, 6, 12
    ori     6, 6, 3                 /* entry 0: a page of 0x4100.. */
    li      5, 0
    mr      4, 20
    li      3, H_PUT_TCE
    sc      1
    std     25, 0(22)
    std     24, 8(22)
    mftb    8                       /* wait 10 ms of timebase (512 MHz): */
    lis     9, 0x4e                 /* vCPU B's hcalls in QEMU need the BQL, */
    ori     9, 9, 0x2000            /* which a reset holds for long */
    add     8, 8, 9
11: mftb    9
    cmpld   9, 8
    blt     11b
    b       loop

/* vCPU B: r3 = 0 */
secondary:
    li      20, 0
    oris    20, 20, 0x8000          /* r20 = LIOBN 0x80000000 */
    lis     21, 1                   /* r21 = 0x10000: last values */
    li      22, 0
    ori     22, 22, 0x9000          /* r22 = 0x9000: status */
    li      25, 0                   /* r25 = round */
    li      26, 0                   /* r26 = failed puts */
    li      29, 0                   /* r29 = lost updates */
    li      30, 0                   /* r30 = failed gets */
    li      31, 0                   /* r31 = zero reads after a put */
    li      7, 0
    li      8, NENT + 1
4:  addi    8, 8, -1                /* last[0..NENT] = 0 */
    sldi    9, 8, 3
    stdx    7, 21, 9
    cmpdi   8, 0
    bgt     4b
bloop:
    addi    25, 25, 1
    li      27, 1                   /* r27 = entry, 1..NENT */
binner:
    bl      check
    andi.   9, 25, 1
    li      28, 0
    beq     5f                      /* even round: 0 */
    sldi    9, 25, 5
    add     9, 9, 27
    andi.   9, 9, 0x3fff
    addi    9, 9, 0x100             /* page 0x100 .. 0x40ff: in RAM */
    sldi    28, 9, 12
    ori     28, 28, 3               /* r28 = tce: page | read | write */
5:  li      3, H_PUT_TCE
    mr      4, 20
    sldi    5, 27, 12               /* ioba = entry * 4 KiB */
    mr      6, 28
    sc      1
    cmpdi   3, 0
    beq     6f
    addi    26, 26, 1
    b       7f
6:  sldi    9, 27, 3
    stdx    28, 21, 9               /* last[entry] = tce */
7:  bl      check
    addi    27, 27, 1
    cmpdi   27, NENT
    ble     binner
    std     25, 24(22)
    std     26, 32(22)
    std     29, 40(22)
    std     30, 48(22)
    std     31, 56(22)
    b       bloop

/* H_GET_TCE of entry r27: 0 or last[r27], else a lost update. Uses r3-r12, r19 */
check:
    mflr    19                      /* LR kept in r19: the hcall may change r0, r3-r12 */
    li      3, H_GET_TCE
    mr      4, 20
    sldi    5, 27, 12
    sc      1
    mtlr    19
    cmpdi   3, 0
    beq     8f
    addi    30, 30, 1
    blr
8:  sldi    9, 27, 3
    ldx     10, 21, 9               /* r10 = last[entry] */
    cmpd    4, 10
    beqlr
    cmpdi   4, 0
    bne     9f
    addi    31, 31, 1               /* 0: a reset cleared it */
    blr
9:  cmpdi   29, 0
    bne     10f
    std     27, 64(22)              /* the first one: entry, read, expected */
    std     4, 72(22)
    std     10, 80(22)
10: addi    29, 29, 1
    std     29, 40(22)
    blr
