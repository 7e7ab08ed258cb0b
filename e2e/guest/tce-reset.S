/*
 * L2 "firmware" for case ddw-restore (-bios): big-endian, entered at 0x100
 * in 64-bit real mode. Forever: RTAS ibm,reset-pe-dma-window on the default
 * PHB (through H_RTAS: the guest removes its windows and gets the default
 * one back), at once H_PUT_TCE on entries 0..NENT-1 of that restored
 * window (LIOBN 0x80000000) with values new each time, then about 50 ms of
 * nothing. RAM layout:
 *   0x9000 iterations   0x9008 failed H_PUT_TCE   0x9010 failed RTAS calls
 *   0x9100 the RTAS argument buffer
 *   0x10000 + 8*e  last value written to entry e
 */
#define NENT 16
#define H_PUT_TCE 0x20
#define H_RTAS 0xf000
#define RTAS_IBM_RESET_PE_DMA_WINDOW 0x2029

    .text
    .globl _start
_start:
    .org 0x100
    li      20, 0
    oris    20, 20, 0x8000          /* r20 = LIOBN 0x80000000 */
    lis     21, 1                   /* r21 = 0x10000: last written */
    li      22, 0
    ori     22, 22, 0x9000          /* r22 = 0x9000: status */
    addi    23, 22, 0x100           /* r23 = 0x9100: RTAS arguments */
    li      25, 0                   /* r25 = iteration */
    li      26, 0                   /* r26 = failed puts */
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
    beq     1f
    addi    24, 24, 1
1:  li      27, 0                   /* r27 = entry */
inner:
    sldi    5, 25, 4
    add     5, 5, 27
    andi.   5, 5, 0x3fff
    addi    5, 5, 0x100             /* page 0x100 .. 0x40ff: in RAM */
    sldi    28, 5, 12
    ori     28, 28, 3               /* r28 = tce: page | read | write */
    mr      6, 28
    sldi    5, 27, 12               /* ioba = entry * 4 KiB */
    mr      4, 20
    li      3, H_PUT_TCE
    sc      1
    cmpdi   3, 0
    bne     2f
    sldi    7, 27, 3
    stdx    28, 21, 7               /* last[entry] = tce */
    b       3f
2:  addi    26, 26, 1
3:  addi    27, 27, 1
    cmpdi   27, NENT
    blt     inner
    std     25, 0(22)
    std     26, 8(22)
    std     24, 16(22)
    mftb    8                       /* wait 50 ms of timebase (512 MHz) */
    lis     9, 0x186
    ori     9, 9, 0xa000            /* 25600000 */
    add     8, 8, 9
4:  mftb    9
    cmpld   9, 8
    blt     4b
    b       loop
