process.env.NYCKEL_TEST_DB = 'postgres';
